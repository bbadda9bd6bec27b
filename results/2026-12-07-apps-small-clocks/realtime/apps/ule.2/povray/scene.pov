#version 3.7;
global_settings { assumed_gamma 1.0 max_trace_level 6 }
camera { location <0, 6, -14> look_at <0, 0.5, 0> angle 50 }
light_source { <-8, 14, -10> color rgb 1 area_light <4, 0, 0>, <0, 0, 4>, 3, 3 adaptive 1 jitter }
light_source { <10, 8, -6> color rgb 0.4 }
plane { y, 0 pigment { checker color rgb 0.9 color rgb 0.2 scale 1.5 } finish { reflection 0.15 } }
#declare I = -3;
#while (I <= 3)
  #declare J = -2;
  #while (J <= 3)
    sphere { <I * 1.6, 0.7, J * 1.6>, 0.7
      #if (mod(I + J + 6, 2) = 0)
        pigment { color rgb <0.8, 0.3 + 0.1 * J, 0.2> } finish { reflection 0.35 specular 0.6 }
      #else
        pigment { color rgbf <0.9, 0.95, 1, 0.85> } finish { specular 0.8 } interior { ior 1.5 }
      #end
    }
    #declare J = J + 1;
  #end
  #declare I = I + 1;
#end
